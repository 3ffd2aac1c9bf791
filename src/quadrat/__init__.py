"""quadrat: seafloor photographs to ecological data."""

__version__ = "0.1.0"
