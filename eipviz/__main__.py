from eipviz.cli import main

raise SystemExit(main())
