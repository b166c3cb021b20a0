"""CRC-16/CCITT-FALSE, the frame and calibration checksum of the nirpad wire protocol.

Owns: the one CRC definition. "CRC-CCITT" names three different CRCs, so this one is
pinned by its check value (poly 0x1021, init 0xFFFF, no reflection, no final XOR).
"""

from __future__ import annotations

import binascii
from typing import Final

CRC_INIT: Final = 0xFFFF
CHECK_VALUE: Final = 0x29B1  # crc16_ccitt_false(b"123456789")


def crc16_ccitt_false(data: bytes) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data``."""
    return binascii.crc_hqx(data, CRC_INIT)
