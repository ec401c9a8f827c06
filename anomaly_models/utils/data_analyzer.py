"""``anomaly_models.utils.data_analyzer.DataAnalyzer``: the seed's import path for the analyzer."""

from anomaly_models.preprocessing import DataAnalyzer

__all__ = ["DataAnalyzer"]
