"""The recipe vocabulary: YAML with a file and line for every value (source), the fixed
sections' schema, sweeps and named pipelines. Pure: no plug-in, no TensorFlow; `plan/` turns
a recipe into validated, content-hashed nodes."""
