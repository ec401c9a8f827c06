"""anomaly_models: Keras 3 anomaly detectors (pure library: no pipeline tools imported here).

Main entry points::

    from anomaly_models import AnomalyDetector           # fit / calibrate / score / save / load
    from anomaly_models.layers import NumericalAnomalyDetection
    from anomaly_models.models import Autoencoder
    from anomaly_models.preprocessing import DataAnalyzer, build_preprocessing_model
    from anomaly_models.thresholds import calibrate_threshold
"""

from anomaly_models.detector import AnomalyDetector, NotFittedError

__all__ = ["AnomalyDetector", "NotFittedError"]
__version__ = "0.1.0"
