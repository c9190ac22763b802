"""Built-in presets (YAML files), installed as ``fractaldb.presets``."""
