"""Bundled datasets for dualnet (installed as the package ``dualnet_data``)."""
