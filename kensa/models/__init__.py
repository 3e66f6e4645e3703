"""Models as ``--model`` names them: :mod:`.loading` resolves a name to a spec and loads it into its registered
backend; :mod:`.tiny` builds the built-in tiny models and adapters, :mod:`.tiny_train` trains them and
:mod:`.corpus` holds their training text."""

from kensa.models.loading import load_model, model_kind, resolve_model, share_cpu_threads

__all__ = ["load_model", "model_kind", "resolve_model", "share_cpu_threads"]
