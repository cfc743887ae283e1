"""Attribution on any Keras model: the layers worth explaining, logits without the softmax, the CAM family.

Below ``Classifier`` in the stack: these work on a plain ``keras.Model`` and
model inputs; ``eipviz.explain`` explains a ``Classifier``'s answers with them.
"""
