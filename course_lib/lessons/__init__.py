"""Each lesson's experiments, their data and their stored results.

One module per lesson, named as its notebook (``notebooks/<lang>/NN_<name>.md``):

- ``lr_schedules``: lesson 01, the softmax toy under each schedule;
- ``gradient_clipping``: lesson 02, clipping on the toys, global against per layer;
- ``finetuning_bert``: lesson 03, BERT fine-tuned with freezing, clipping and a schedule;
- ``targeted_freezing_gpt``: lesson 04, a pretrained GPT fine-tuned with most of it frozen;
- ``optimization_options``: lesson 05, each optimization option timed, and the fast step's benchmark.

What they share: ``sources`` (offline packages or the network), ``plain`` (the reference loops in plain PyTorch that lessons
01-02 show), ``sentiment`` (lesson 03's reviews and BERT), ``corpus`` and
``pretraining`` (lessons 04-05's texts, tokenizers and pretrained GPT),
``online`` (the online paths' contact with the network), ``data_parallel``
(lesson 05's ``torchrun`` script), ``stored`` and ``results/`` (the GPU runs'
numbers with their provenance).

Import the engine, the models and the reader's strings (course_lib.i18n), never
course_lib.show (``tests/test_layers.py``).
"""
