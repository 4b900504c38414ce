"""The generation engine: one base model in memory answering chat requests, each with
the style adapter it names (or none).

Adapters are loaded on first use, next to each other on the one base model, under their
`name@version`: a newly promoted version is a new identity, so nothing loaded for the
old one is reused. This engine serves one request at a time; batching and streaming
extend it behind the same Generator protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from hybrid.config import GenerationSettings
from hybrid.errors import HybridError
from hybrid.types import AdapterRef, Generation, Message
from training import AdapterRecord, BaseModel, render_chat

AdapterLookup = Callable[[AdapterRef], AdapterRecord]


class LocalGenerator:
    def __init__(self, base: BaseModel, adapters: AdapterLookup | None = None) -> None:
        self.base = base
        self.context_window = base.context_window
        self._stop_ids = _stop_token_ids(base)
        self._whitespace_ids = _whitespace_token_ids(base)
        self._lookup = adapters
        self._peft = None  # the PeftModel, once a first adapter is loaded
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        prompt = render_chat(self.base.tokenizer, messages, add_generation_prompt=True)
        return len(self.base.tokenizer(prompt, add_special_tokens=False).input_ids)

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        adapter: AdapterRef | None = None,
    ) -> Generation:
        import torch

        resolved, model, scope = self._with_adapter(adapter)
        tokenizer = self.base.tokenizer
        prompt = render_chat(tokenizer, messages, add_generation_prompt=True)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        prompt_tokens = int(inputs.input_ids.shape[1])
        budget = self.base.context_window - prompt_tokens
        if budget < 1:
            raise HybridError(
                f"the prompt takes {prompt_tokens} tokens; the model's context holds "
                f"{self.base.context_window}",
                hint="ask a shorter question",
            )
        sampling: dict[str, object] = {"do_sample": False}
        if settings.temperature > 0:
            sampling = {
                "do_sample": True,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
            }
            torch.manual_seed(settings.seed)
        penalty = []
        if settings.repetition_penalty != 1.0:
            penalty = [
                _answer_repetition_penalty(
                    settings.repetition_penalty, prompt_tokens, self._whitespace_ids
                )
            ]
        with self._lock, scope, torch.inference_mode():
            if resolved is not None:
                model.set_adapter(str(resolved))
            output = model.generate(
                **inputs.to(model.device),
                max_new_tokens=min(settings.max_new_tokens, budget),
                logits_processor=penalty,
                eos_token_id=self._stop_ids,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        new_tokens = output[0, prompt_tokens:].tolist()
        stopped = bool(new_tokens) and new_tokens[-1] in self._stop_ids
        return Generation(
            text=tokenizer.decode(new_tokens, skip_special_tokens=True).strip(),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(new_tokens),
            finish_reason="stop" if stopped else "length",
            adapter=resolved,
        )

    def _with_adapter(
        self, adapter: AdapterRef | None
    ) -> tuple[AdapterRef | None, object, AbstractContextManager[object]]:
        """(resolved ref, the model to call, a context to call it in). Once any adapter
        is loaded, LoRA layers sit inside the base model, so base answers go through the
        PeftModel with its adapters disabled."""
        if adapter is None:
            if self._peft is None:
                return None, self.base.model, nullcontext()
            return None, self._peft, self._peft.disable_adapter()
        if self._lookup is None:
            raise HybridError(f"adapter {adapter} requested, but this generator has no registry")
        record = self._lookup(adapter)
        key = f"{record.name}@{record.version}"
        with self._lock:
            if key not in self._loaded:
                self._load(key, str(record.path))
        return record.ref, self._peft, nullcontext()

    def _load(self, key: str, path: str) -> None:
        from peft import PeftModel

        if self._peft is None:
            self._peft = PeftModel.from_pretrained(self.base.model, path, adapter_name=key)
        else:
            self._peft.load_adapter(path, adapter_name=key)
        self._peft.eval()
        self._loaded.add(key)


def _answer_repetition_penalty(penalty: float, prompt_tokens: int, exempt: list[int]):
    """transformers' repetition penalty, applied to the answer's own words only. The
    stock one also penalises every prompt token, so the model avoids exactly the words
    of the sources it should quote; and it penalises line breaks, so an answer whose
    format puts a sign-off on its own last line stops before it (measured: a trained
    adapter kept its sign-off on 2 of 12 sample questions at 1.1, 7 of 12 at 1.0)."""
    import torch
    from transformers import LogitsProcessor, RepetitionPenaltyLogitsProcessor

    stock = RepetitionPenaltyLogitsProcessor(penalty)
    exempt_ids = torch.tensor(exempt, dtype=torch.long)

    class AnswerRepetitionPenalty(LogitsProcessor):
        def __call__(self, input_ids, scores):
            answer = input_ids[:, prompt_tokens:]
            if not answer.shape[1]:
                return scores
            penalised = stock(answer, scores.clone())
            penalised[:, exempt_ids] = scores[:, exempt_ids]
            return penalised

    return AnswerRepetitionPenalty()


def _whitespace_token_ids(base: BaseModel) -> list[int]:
    """The vocabulary's tokens that are only spaces and line breaks."""
    tokenizer = base.tokenizer
    return sorted(
        token_id
        for token, token_id in tokenizer.get_vocab().items()
        if tokenizer.convert_tokens_to_string([token]).isspace()
    )


def _stop_token_ids(base: BaseModel) -> list[int]:
    """Every token that ends the assistant's turn: the model's eos id(s), the tokenizer's,
    and ChatML's <|im_end|> where the vocabulary has it."""
    configured = base.model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(base.tokenizer.eos_token_id)
    im_end = base.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if im_end != base.tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(i for i in ids if isinstance(i, int))
