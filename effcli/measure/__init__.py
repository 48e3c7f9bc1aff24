"""Measurements of exported artifacts: bytes, gzip bytes, LiteRT accuracy and latency, weights.

Nothing here needs TensorFlow except `weights.py`, which reads a Keras model's weights.
"""
