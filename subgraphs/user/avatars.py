"""Avatar images: recognised by content, bounded in bytes and pixels, re-encoded at four sizes.

Re-encoding from decoded pixels drops every metadata block (EXIF, XMP, ICC comments); the EXIF
orientation is applied first so the picture still stands the right way up.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import BadUserInput

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# 40 megapixels: far above any real avatar, far below a decompression bomb's hundreds.
MAX_SOURCE_PIXELS = 40_000_000
OUTPUT_FORMAT = "webp"
OUTPUT_CONTENT_TYPE = "image/webp"


class AvatarSize(StrEnum):
    THUMB = "thumb"
    SMALL = "small"
    MEDIUM = "medium"
    ORIGINAL = "original"

    @property
    def max_pixels(self) -> int:
        return _EDGE[self]


_EDGE = {
    AvatarSize.THUMB: 64,
    AvatarSize.SMALL: 128,
    AvatarSize.MEDIUM: 256,
    AvatarSize.ORIGINAL: 512,
}

_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("PNG", b"\x89PNG\r\n\x1a\n", 0),
    ("JPEG", b"\xff\xd8\xff", 0),
)


def detect_format(data: bytes) -> str | None:
    """PNG, JPEG or WEBP from the magic bytes, whatever the file is called or claims to be."""
    for name, signature, offset in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


@dataclass(frozen=True)
class RenderedAvatar:
    size: AvatarSize
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedAvatar:
    version: str
    source_format: str
    renditions: list[RenderedAvatar]

    def metadata(self) -> dict[str, object]:
        """What the profile row keeps about the stored files."""
        return {
            "version": self.version,
            "format": OUTPUT_FORMAT,
            "sourceFormat": self.source_format,
            "sizes": {
                r.size.value: {"width": r.width, "height": r.height, "bytes": len(r.data)}
                for r in self.renditions
            },
        }


def _refuse(message: str) -> BadUserInput:
    return BadUserInput(message, field="file")


def process_avatar(data: bytes) -> ProcessedAvatar:
    """Validate and render an upload; `BadUserInput(field="file")` for anything unacceptable.

    CPU-bound: call it in a worker thread.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise _refuse("The image is larger than 5 MB")
    source_format = detect_format(data)
    if source_format is None:
        raise _refuse("Only PNG, JPEG or WebP images are accepted")
    try:
        with Image.open(io.BytesIO(data), formats=[source_format]) as image:
            # The header tells the dimensions before any pixel is decoded.
            width, height = image.size
            if width < 1 or height < 1 or width * height > MAX_SOURCE_PIXELS:
                raise _refuse("The image has too many pixels")
            image.load()
            upright = ImageOps.exif_transpose(image)
            mode = "RGBA" if upright.mode in ("RGBA", "LA", "P", "PA") else "RGB"
            pixels = upright.convert(mode)
    except BadUserInput:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own guard fires while reading the header of the most extreme claims.
        raise _refuse("The image has too many pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _refuse("The image could not be read") from exc
    renditions = [_render(pixels, size) for size in AvatarSize]
    return ProcessedAvatar(
        version=secrets.token_hex(16), source_format=source_format.lower(), renditions=renditions
    )


def _render(pixels: Image.Image, size: AvatarSize) -> RenderedAvatar:
    copy = pixels.copy()
    # Never enlarge: a 100 px upload stays 100 px at the bigger sizes.
    copy.thumbnail((size.max_pixels, size.max_pixels), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    copy.save(out, format="WEBP", quality=85, method=4)
    return RenderedAvatar(size=size, data=out.getvalue(), width=copy.width, height=copy.height)
