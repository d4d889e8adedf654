"""Local Google Sheets API v4 emulator (plus the Drive v3 and OAuth bits gspread needs).

Start it with ``python -m sheets.emulator --port 8089`` or in-process with
:func:`sheets.emulator.testing.start_emulator`; see docs/sheets-emulator.md.
"""

from .server import EmulatorServer
from .state import Config, Emulator

__all__ = ["Config", "Emulator", "EmulatorServer"]
