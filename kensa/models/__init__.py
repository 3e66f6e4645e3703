"""Models as ``--model`` names them: :mod:`.loading` resolves a name to a spec and loads it into its registered
backend. The built-in tiny models are built by :mod:`kensa.tiny`, a layer below."""

from kensa.models.loading import load_model, model_kind, resolve_model, share_cpu_threads

__all__ = ["load_model", "model_kind", "resolve_model", "share_cpu_threads"]
