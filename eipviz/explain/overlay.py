"""CAM overlays and gallery sheets with OpenCV."""

import cv2
import numpy as np

COLORMAPS = {"jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "viridis": cv2.COLORMAP_VIRIDIS,
             "inferno": cv2.COLORMAP_INFERNO}
DISPLAY_SIZE = 128  # a 32x32 image is unreadable on screen; show it 4x


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W[, 1|3]) to uint8 RGB (H, W, 3)."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2 or image.shape[-1] == 1:
        return np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=-1)
    return image


def upscale(image: np.ndarray, size: int = DISPLAY_SIZE) -> np.ndarray:
    """Enlarge for display with nearest-neighbour pixels (no invented detail)."""
    return cv2.resize(as_rgb(image), (size, size), interpolation=cv2.INTER_NEAREST)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45, colormap: str = "jet",
            size: int = DISPLAY_SIZE) -> np.ndarray:
    """RGB uint8 (size, size, 3): the image with the CAM's heat blended over it."""
    base = upscale(image, size)
    heat = cv2.resize(np.clip(cam, 0, 1).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap((255 * heat).astype(np.uint8), COLORMAPS[colormap])
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(colored, alpha, base, 1 - alpha, 0)


def gallery_sheet(tiles: list[list[np.ndarray]], captions: list[str], tile: int = DISPLAY_SIZE) -> np.ndarray:
    """One RGB image: a row per item (its tiles side by side) with its caption above."""
    caption_h = 18
    columns = max(len(row) for row in tiles)
    sheet = np.full((len(tiles) * (tile + caption_h), columns * tile, 3), 255, np.uint8)
    for r, (row, caption) in enumerate(zip(tiles, captions)):
        top = r * (tile + caption_h)
        cv2.putText(sheet, caption[:70], (4, top + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for c, image in enumerate(row):
            sheet[top + caption_h:top + caption_h + tile, c * tile:(c + 1) * tile] = cv2.resize(
                image, (tile, tile), interpolation=cv2.INTER_NEAREST)
    return sheet


def png_bytes(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()
