"""The loop's use cases. ``Service`` is the one object the front doors talk to.

Every method takes the acting :class:`Principal` first and checks its role.
"""

from loopwise.service.alerts import AlertsMixin
from loopwise.service.audit import AuditMixin
from loopwise.service.base import LOCAL, Principal
from loopwise.service.calibration import CalibrationMixin
from loopwise.service.drift import DriftMixin
from loopwise.service.explain import ExplainMixin
from loopwise.service.export import ExportMixin
from loopwise.service.fairness import FairnessMixin
from loopwise.service.metrics import MetricsMixin
from loopwise.service.overrides import OverridesMixin
from loopwise.service.pool import PoolMixin
from loopwise.service.projects import ProjectsMixin
from loopwise.service.report import ReportMixin
from loopwise.service.review import ReviewMixin
from loopwise.service.submit import SubmitMixin
from loopwise.service.timeline import TimelineMixin
from loopwise.service.training import AutoRetrainMixin, TrainingMixin
from loopwise.service.users import UsersMixin


class Service(
    AlertsMixin,  # first: it evaluates the alert rules after submit and review
    AutoRetrainMixin,  # queues a training job after review when retrain_every is due
    PoolMixin,
    ReportMixin,
    TrainingMixin,
    CalibrationMixin,
    ProjectsMixin,
    SubmitMixin,
    ReviewMixin,
    MetricsMixin,
    ExportMixin,
    UsersMixin,
    AuditMixin,
    OverridesMixin,
    ExplainMixin,
    TimelineMixin,
    FairnessMixin,
    DriftMixin,
):
    """All use cases over one database (see the mixins for each group of verbs)."""


__all__ = ["LOCAL", "Principal", "Service"]
