"""t5vae: finetuning pretrained T5 into a sentence VAE (Park & Lee, 2021), reproduced."""

from t5vae.metrics import evaluate
from t5vae.model import T5VAE, T5VAEConfig
from t5vae.phases import TrainConfig
from t5vae.training import train

__all__ = ["T5VAE", "T5VAEConfig", "TrainConfig", "evaluate", "train"]
__version__ = "0.1.0"
