"""DYNAP-SE2 hardware layer.

- :mod:`.biases`: bias-name table, parametric bias generator, current ↔ (coarse, fine) translation;
- :mod:`.calibration`: user-supplied calibration tables (CSV/JSON) and their precedence.

Submodules are imported explicitly so that importing this package stays cheap.
"""
