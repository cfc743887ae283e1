"""CAM overlays and gallery sheets with OpenCV."""

import cv2
import numpy as np

from eipviz.errors import EipvizError

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


def colormap_code(colormap: str) -> int:
    """OpenCV's code for a colormap in ``COLORMAPS``; an unknown name raises, naming it."""
    if colormap not in COLORMAPS:
        raise EipvizError(f"Unknown colormap. Received: colormap={colormap!r}; choose one of {', '.join(COLORMAPS)}.")
    return COLORMAPS[colormap]


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45, colormap: str = "jet",
            size: int = DISPLAY_SIZE) -> np.ndarray:
    """RGB uint8 (size, size, 3): the image with the CAM's heat blended over it."""
    base = upscale(image, size)
    heat = cv2.resize(np.clip(cam, 0, 1).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap((255 * heat).astype(np.uint8), colormap_code(colormap))
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(colored, alpha, base, 1 - alpha, 0)


FONT, FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.4
CAPTION_HEIGHT = 18  # one line of sheet text: an item's caption, the column labels
HEADER_LINE_HEIGHT = 16
HEADER_PADDING = 6  # below the header's last line


def _text(canvas: np.ndarray, text: str, x: int, baseline: int) -> None:
    cv2.putText(canvas, text, (x, baseline), FONT, FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)


def _text_width(text: str) -> int:
    return cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][0]


def wrap_to_width(text: str, width: int) -> list[str]:
    """``text`` in lines that each fit ``width`` pixels of sheet text (a long path is cut where it must be)."""
    lines: list[str] = []
    for word in text.split(" "):
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and _text_width(candidate) <= width:
            lines[-1] = candidate
            continue
        while _text_width(word) > width and len(word) > 1:
            cut = max(n for n in range(1, len(word) + 1) if _text_width(word[:n]) <= width or n == 1)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def header_height(lines: list[str]) -> int:
    """Pixels a sheet's header of these (already wrapped) lines takes; none without lines."""
    return len(lines) * HEADER_LINE_HEIGHT + HEADER_PADDING if lines else 0


def gallery_sheet(tiles: list[list[np.ndarray]], captions: list[str], tile: int = DISPLAY_SIZE,
                  header: list[str] | tuple[str, ...] = (),
                  column_labels: list[str] | tuple[str, ...] = (),
                  tile_captions: list[list[str]] | None = None) -> np.ndarray:
    """One RGB image: ``header`` lines (wrapped to the sheet's width), a strip naming each column, then a row
    per item (its tiles side by side) with its caption above. Without header and labels, only the rows.

    ``tile_captions``: text under each tile of a row (wrapped to the tile's width), e.g. a map's scores.
    """
    columns = max([len(row) for row in tiles] + [len(column_labels), 1])
    width = columns * tile
    lines = [line for text in header for line in wrap_to_width(text, width - 8)]
    top = header_height(lines)
    labels_height = CAPTION_HEIGHT if column_labels else 0
    under = [[wrap_to_width(text, tile - 4) for text in row] for row in tile_captions or []]
    under_height = max((len(wrapped) for row in under for wrapped in row), default=0) * HEADER_LINE_HEIGHT
    row_height = CAPTION_HEIGHT + tile + under_height
    sheet = np.full((top + labels_height + len(tiles) * row_height, width, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        _text(sheet, line, 4, (i + 1) * HEADER_LINE_HEIGHT - 3)
    for c, label in enumerate(column_labels):
        _text(sheet, label, c * tile + max(2, (tile - _text_width(label)) // 2), top + 13)
    top += labels_height
    for r, (row, caption) in enumerate(zip(tiles, captions)):
        row_top = top + r * row_height
        _text(sheet, caption[:70], 4, row_top + 13)
        for c, image in enumerate(row):
            sheet[row_top + CAPTION_HEIGHT:row_top + CAPTION_HEIGHT + tile, c * tile:(c + 1) * tile] = cv2.resize(
                as_rgb(image), (tile, tile), interpolation=cv2.INTER_NEAREST)
        for c, wrapped in enumerate(under[r] if r < len(under) else []):
            for k, line in enumerate(wrapped):
                _text(sheet, line, c * tile + 2, row_top + CAPTION_HEIGHT + tile + (k + 1) * HEADER_LINE_HEIGHT - 4)
    return sheet


def colormap_legend(colormap: str = "jet", width: int = 256, height: int = 34) -> np.ndarray:
    """RGB uint8 (height, width, 3): the colormap from low (left) to high (right) over "low" and "high" labels.

    Its bar is the CAM scale of ``overlay`` at ``alpha=1``: the left end is a CAM of 0, the right end of 1.
    """
    if width < 64 or height < 24:
        raise EipvizError(f"A legend needs at least 64x24 pixels. Received: width={width}, height={height}.")
    bar_height = height - CAPTION_HEIGHT
    ramp = np.linspace(0, 255, width).round().astype(np.uint8)[None, :]
    bar = cv2.cvtColor(cv2.applyColorMap(ramp, colormap_code(colormap)), cv2.COLOR_BGR2RGB)
    legend = np.full((height, width, 3), 255, np.uint8)
    legend[:bar_height] = bar
    _text(legend, "low", 1, height - 5)
    _text(legend, "high", width - _text_width("high") - 1, height - 5)
    return legend


def png_bytes(image: np.ndarray) -> bytes:
    """PNG file bytes of an RGB (or grey) uint8 image."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise EipvizError("PNG encoding failed")
    return encoded.tobytes()
