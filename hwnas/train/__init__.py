"""Seeded training with Adam and early stopping on the validation split."""

from hwnas.train._trainer import TrainResult, TrainSettings, accuracy, seed_everything, train

__all__ = ["TrainResult", "TrainSettings", "accuracy", "seed_everything", "train"]
