"""The reader-facing layer: tables, plots, widgets and exercise checks in the reader's language.
May import every other part of course_lib; nothing imports it but the notebooks."""
