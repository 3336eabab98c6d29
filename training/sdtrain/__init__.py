"""spritediffusion training workspace: dataset tools, model, trainer, exporter."""

__version__ = "0.1.0"
