"""t5vae: finetuning pretrained T5 into a sentence VAE (Park & Lee, 2021), reproduced."""

from t5vae.evaluation.metrics import evaluate
from t5vae.model.vae import T5VAE, T5VAEConfig
from t5vae.training.config import TrainConfig
from t5vae.training.loop import train

__all__ = ["T5VAE", "T5VAEConfig", "TrainConfig", "evaluate", "train"]
__version__ = "0.1.0"
