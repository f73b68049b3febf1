"""Each lesson's experiments (one module per lesson, named as its notebook), their data and stored results.
Import the engine, the models and the reader's strings (course_lib.i18n)."""
