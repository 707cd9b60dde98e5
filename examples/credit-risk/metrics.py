"""credit-risk's own business metrics, computed by the test job beside the standard ones.

A missed default (false negative) costs the bank about five times what a wrongly refused good
applicant (false positive) costs; the lending team watches the cost per applicant and how many
applicants the model would approve."""

MISSED_DEFAULT_COST = 5.0
REFUSED_GOOD_COST = 1.0


def business_metrics(y_true, y_pred, y_score):
    pairs = list(zip(y_true, y_pred, strict=True))
    missed = sum(1 for truth, guess in pairs if truth == 1 and guess == 0)
    refused = sum(1 for truth, guess in pairs if truth == 0 and guess == 1)
    cost = MISSED_DEFAULT_COST * missed + REFUSED_GOOD_COST * refused
    return {
        "cost_per_applicant": cost / len(pairs),
        "approval_rate": sum(1 for _, guess in pairs if guess == 0) / len(pairs),
    }
