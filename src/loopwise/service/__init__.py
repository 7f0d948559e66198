"""The loop's use cases. ``Service`` is the one object the front doors talk to.

Every method takes the acting :class:`Principal` first and checks its role.
"""

from loopwise.service.audit import AuditMixin
from loopwise.service.base import LOCAL, Principal
from loopwise.service.calibration import CalibrationMixin
from loopwise.service.explain import ExplainMixin
from loopwise.service.export import ExportMixin
from loopwise.service.metrics import MetricsMixin
from loopwise.service.projects import ProjectsMixin
from loopwise.service.review import ReviewMixin
from loopwise.service.submit import SubmitMixin
from loopwise.service.training import TrainingMixin
from loopwise.service.users import UsersMixin


class Service(
    TrainingMixin,
    CalibrationMixin,
    ProjectsMixin,
    SubmitMixin,
    ReviewMixin,
    MetricsMixin,
    ExportMixin,
    UsersMixin,
    AuditMixin,
    ExplainMixin,
):
    """All use cases over one database (see the mixins for each group of verbs)."""


__all__ = ["LOCAL", "Principal", "Service"]
