"""The generation engine: one base model in memory answering chat requests.

This first engine serves one request at a time on the base model; batching, streaming
and per-request adapters extend it behind the same Generator protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

from hybrid.config import GenerationSettings
from hybrid.errors import HybridError
from hybrid.types import AdapterRef, Generation, Message
from training import BaseModel, render_chat


class LocalGenerator:
    def __init__(self, base: BaseModel) -> None:
        self.base = base
        self.context_window = base.context_window
        self._stop_ids = _stop_token_ids(base)

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

        if adapter is not None:
            raise HybridError(f"adapter {adapter} not found: this bot has no adapters yet")
        tokenizer, model = self.base.tokenizer, self.base.model
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
            penalty = [_answer_repetition_penalty(settings.repetition_penalty, prompt_tokens)]
        with torch.inference_mode():
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
        )


def _answer_repetition_penalty(penalty: float, prompt_tokens: int):
    """transformers' repetition penalty, applied to the answer's own tokens only. The
    stock one also penalises every prompt token, so the model avoids exactly the words
    of the sources it should quote."""
    from transformers import LogitsProcessor, RepetitionPenaltyLogitsProcessor

    stock = RepetitionPenaltyLogitsProcessor(penalty)

    class AnswerRepetitionPenalty(LogitsProcessor):
        def __call__(self, input_ids, scores):
            answer = input_ids[:, prompt_tokens:]
            return stock(answer, scores) if answer.shape[1] else scores

    return AnswerRepetitionPenalty()


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
