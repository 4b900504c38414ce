"""OpenAI's fine-tuning jobs API with the official client: upload a file, run a job to
success and chat with its model at once; events and checkpoints; cancel; a retried
create (the SDK resends without an idempotency key) is one job; a job the server was
running when it stopped resumes at the next start."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import openai
import pytest
from support import make_bot, serving, synced_bot

from hybrid.types import AdapterRef
from server.app import create_app
from training import AdapterNotFoundError, AdapterRegistry

FINISHED = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    return synced_bot(tmp_path_factory.mktemp("jobs") / "bot", base=str(tiny_model_dir))


def upload(bot, client: openai.OpenAI, lines: int = 24) -> str:
    data = "".join((bot.data_dir / "train.jsonl").read_text().splitlines(True)[:lines])
    return client.files.create(
        file=("train.jsonl", io.BytesIO(data.encode())), purpose="fine-tune"
    ).id


def wait_for(client: openai.OpenAI, job_id: str, until=lambda job: job.status in FINISHED):
    deadline = time.monotonic() + 180
    while not until(job := client.fine_tuning.jobs.retrieve(job_id)):
        assert time.monotonic() < deadline, f"job stuck at {job.status}"
        time.sleep(0.2)
    return job


def test_a_job_trains_a_model_that_chat_can_use_at_once(bot, client: openai.OpenAI) -> None:
    created = client.fine_tuning.jobs.create(
        model=bot.config.models.base,
        training_file=upload(bot, client),
        suffix="support-v2",
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}},
        },
    )
    assert created.status in ("queued", "running") and created.fine_tuned_model is None
    assert created.hyperparameters.n_epochs == 2
    assert created.hyperparameters.learning_rate_multiplier == "auto"

    job = wait_for(client, created.id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == "support-v2@1" and job.trained_tokens > 0
    # Auto-paging follows the cursor (5 at a time) through every event, newest first.
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=5))
    messages = [event.message for event in events]
    assert messages[0] == "The job has successfully completed"
    assert messages[-1] == f"Created fine-tuning job {job.id}"
    assert "New fine-tuned model created: support-v2@1" in messages
    steps = [event.data["step"] for event in events if event.type == "metrics"]
    assert steps == sorted(steps, reverse=True) and steps[0] == steps[-1] + len(steps) - 1
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert len(checkpoints) == 2, "one per epoch"
    assert checkpoints[0].fine_tuned_model_checkpoint == "support-v2@1"
    assert checkpoints[0].step_number == steps[0] > checkpoints[1].step_number
    assert checkpoints[0].metrics.valid_loss is not None

    completion = client.chat.completions.create(
        model=job.fine_tuned_model,
        messages=[{"role": "user", "content": "Can I return a gift?"}],
        max_tokens=4,
    )
    assert completion.model == "support-v2@1" and completion.choices[0].message.content
    assert "support-v2@1" in [model.id for model in client.models.list()]
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.cancel(job.id)


class LoseFirstAnswer(httpx.HTTPTransport):
    """The server gets the first create and answers it; the client never sees the answer."""

    lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/jobs") and not self.lost:
            self.lost += 1
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_create_the_sdk_retries_is_one_job_and_cancel_stops_it(
    bot, url: str, client: openai.OpenAI
) -> None:
    transport = LoseFirstAnswer()
    retrying = openai.OpenAI(
        base_url=f"{url}/v1",
        api_key="x",
        max_retries=2,
        http_client=httpx.Client(transport=transport),
    )
    params = {
        "model": bot.config.models.base,
        "training_file": upload(bot, client),
        "suffix": "long-run",
        "hyperparameters": {"n_epochs": 50, "batch_size": 2},
    }
    job = retrying.fine_tuning.jobs.create(**params)
    assert transport.lost == 1, "the SDK retried"
    assert [
        j.id for j in client.fine_tuning.jobs.list() if j.user_provided_suffix == "long-run"
    ] == [job.id]

    running = wait_for(client, job.id, until=lambda j: j.status == "running")
    wait_for(
        client,
        job.id,
        until=lambda j: client.fine_tuning.jobs.list_events(j.id).data[0].type == "metrics",
    )
    assert client.fine_tuning.jobs.cancel(running.id).status == "running"  # stops at the next step
    assert wait_for(client, job.id).status == "cancelled"
    run_folder = bot.state_dir / "runs" / "long-run"
    assert not run_folder.exists(), "a cancelled job's checkpoints are not kept"
    with (
        AdapterRegistry(bot.database, bot.adapters_dir) as registry,
        pytest.raises(AdapterNotFoundError),
    ):
        registry.get(AdapterRef("long-run"))
    # Cancelled: the same parameters again are a new job, which a key makes idempotent.
    keyed = {"extra_headers": {"Idempotency-Key": "nightly-1"}}
    again = client.fine_tuning.jobs.create(**params, **keyed)
    assert again.id != job.id and client.fine_tuning.jobs.create(**params, **keyed).id == again.id
    with pytest.raises(openai.ConflictError, match="Idempotency-Key"):
        client.fine_tuning.jobs.create(**{**params, "seed": 7}, **keyed)
    client.fine_tuning.jobs.cancel(again.id)
    assert wait_for(client, again.id).status == "cancelled"


def test_the_job_list_pages_newest_first(bot, client: openai.OpenAI) -> None:
    every = list(client.fine_tuning.jobs.list(limit=1))  # one per page, cursor by cursor
    assert len(every) >= 3 and len({job.id for job in every}) == len(every)
    assert [job.created_at for job in every] == sorted(
        (job.created_at for job in every), reverse=True
    )


def test_requests_hybrid_cannot_do_are_refused_naming_the_field(bot, client: openai.OpenAI) -> None:
    file_id = upload(bot, client)
    base = bot.config.models.base
    cases = [
        ({"model": "gpt-4o-mini", "training_file": file_id}, "model"),
        ({"model": base, "training_file": "file-missing"}, "training_file"),
        ({"model": base, "training_file": file_id, "suffix": "no spaces"}, "suffix"),
        ({"model": base, "training_file": file_id, "method": {"type": "dpo"}}, "method"),
    ]
    for params, field in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.fine_tuning.jobs.create(**params)
        assert refused.value.body["param"] == field, params
    with pytest.raises(openai.UnprocessableEntityError):
        client.fine_tuning.jobs.create(
            model=base, training_file=file_id, hyperparameters={"n_epochs": 0}
        )
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-missing")


def test_a_job_the_server_was_running_when_it_stopped_resumes(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = make_bot(tmp_path / "bot", base=str(tiny_model_dir), checkpoint_steps=2)
    with serving(create_app(bot)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        job = client.fine_tuning.jobs.create(
            model=bot.config.models.base,
            training_file=upload(bot, client, lines=48),
            suffix="resumed",
            hyperparameters={"n_epochs": 3, "batch_size": 4},
        )
        wait_for(
            client, job.id, until=lambda j: client.fine_tuning.jobs.checkpoints.list(j.id).data
        )
    with serving(create_app(bot)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        finished = wait_for(client, job.id)
        messages = [
            event.message for event in client.fine_tuning.jobs.list_events(job.id, limit=1000)
        ]
    assert finished.status == "succeeded" and finished.fine_tuned_model == "resumed@1"
    assert "Resuming from the last checkpoint" in messages
    assert messages.count("Fine-tuning job started") == 2, "started, then resumed"
