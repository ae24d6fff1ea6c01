# System tests of `moat console` (docs/control.md).
