"""The quiz suite's tasks: readers for the seed's formats, JAQKET v1, the AI王 TSV and JMMLU (:mod:`.formats`),
the five-choice converters (:mod:`.convert`), the answer parser (:mod:`.answers`), the prompt versions
(:mod:`.prompts`), the sets and their categories (:mod:`.sets`) and the tasks themselves (:mod:`.tasks`)."""
