"""researchcoord: write workers for the research coordinator, and talk to it, in Python.

    from researchcoord import Worker, Client

Worker runs a handler for one worker type (design, training, backtest, assessment) and keeps
every worker rule of the protocol; Client triggers, cancels and resumes researches and reads
them. researchcoord.testing runs a handler without Kafka or Redis.
"""

from .client import Client, Outcome
from .config import Config, ConfigError
from .job import Job
from .protocol import BadResult, InvalidMessage
from .worker import Worker

__all__ = ["Worker", "Client", "Outcome", "Job", "Config", "ConfigError", "BadResult",
           "InvalidMessage"]
__version__ = "0.1.0"
