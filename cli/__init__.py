"""The dualnet command-line application (installed as the package dualnet_cli)."""
