"""Forward baselines: what a structure → spectrum model must beat.

* :class:`MeanSpectrum` -- the mean training spectrum of the element, whatever the structure
  (the "predict the average" baseline).
* :class:`NearestNeighbourSpectrum` -- the spectrum of the training row whose pooled encoder
  embedding is closest (Euclidean, after standardising each feature with the training rows'
  mean and spread): a lookup in the encoder's feature space, the baseline that tells whether
  the head learns more than "find the most similar known site".

Both follow the scikit-learn convention: ``fit(features, mu)`` then ``predict(features)``;
fitted state ends in ``_``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MeanSpectrum", "NearestNeighbourSpectrum"]


class MeanSpectrum:
    """Predict the mean training spectrum for every input."""

    def fit(self, features: np.ndarray, mu: np.ndarray) -> MeanSpectrum:
        """Store the mean of ``mu`` ``(n, grid)``."""
        self.mean_ = np.asarray(mu, float).mean(axis=0)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Shape ``(m, grid)``."""
        return np.tile(self.mean_, (len(features), 1))


class NearestNeighbourSpectrum:
    """Predict the spectrum of the nearest training embedding (standardised Euclidean)."""

    def fit(self, features: np.ndarray, mu: np.ndarray) -> NearestNeighbourSpectrum:
        """Store the standardised training embeddings ``(n, d)`` and spectra ``(n, grid)``."""
        x = np.asarray(features, float)
        self.center_ = x.mean(axis=0)
        self.scale_ = np.maximum(x.std(axis=0), 1e-6)
        self.train_x_ = (x - self.center_) / self.scale_
        self.train_mu_ = np.asarray(mu, float)
        return self

    def neighbours(self, features: np.ndarray) -> np.ndarray:
        """Index of the nearest training row of each input, shape ``(m,)``."""
        q = (np.asarray(features, float) - self.center_) / self.scale_
        d2 = ((q[:, None, :] - self.train_x_[None, :, :]) ** 2).sum(axis=2)
        return d2.argmin(axis=1)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Shape ``(m, grid)``."""
        return self.train_mu_[self.neighbours(features)]
