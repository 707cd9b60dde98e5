"""quarterly-review: the model-risk group reviews a model's last 90 days and decides to keep,
retrain or retire the version in production. Every quarter, or on `mlc events emit
quarterly-review --model NAME`."""

from datetime import timedelta

from prefect import flow
from pydantic import BaseModel, Field

from flows import steps
from mlc_tasks.processes import Process


class Window(BaseModel):
    days: int = Field(default=90, ge=7, le=366, description="how far back the evidence goes")


process = Process(name="quarterly-review", description="Keep, retrain or retire: a quarterly "
                  "review by model risk.", schedule="0 6 1 1,4,7,10 *",
                  events=["quarterly-review"], payload=Window)


@flow(name="quarterly-review")
def quarterly_review(model: str, event: str = "") -> str:
    """Ask the model-risk group to keep the production version or retrain it.

    Args:
        model: the model under review
        event: the id of the verified request that started it (set by the trigger)
    """
    window = Window.model_validate(steps.request_of(model, event).payload)
    version = steps.production_version(model)
    if version is None:
        return f"{model}: nothing in production to review"
    evidence = steps.evidence_bundle(model, window.days)
    answer = steps.ask(version, f"Quarterly review of {version.ref}", evidence.markdown(),
                       choices=["keep", "retrain", "retire"], groups=["model-risk"],
                       deadline=timedelta(days=14))
    if answer.choice == "retrain":
        steps.request_process("retrain", model, requested_by=answer.people[0])
    elif answer.choice == "retire":
        steps.retire(version, f"quarterly review: {answer.comment}", by=answer.people[0])
    return f"{version.ref}: {answer.choice or 'no answer by the deadline'}"
