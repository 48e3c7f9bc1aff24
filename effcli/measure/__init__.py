"""Measurements of exported artifacts: bytes, gzip bytes, LiteRT accuracy and latency, and what
the flatbuffer holds (weights, sparsity, unique values, MACs, activation memory).

Nothing here imports TensorFlow: every number is read from the exported .tflite file.
"""
