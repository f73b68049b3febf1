"""The course's models: the GPT-2-style decoder, its fast training step, the toy models.  Import only the engine."""
