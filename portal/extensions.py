"""Process-wide Flask extensions: the database, AppBuilder, CSRF protection, migrations."""

from __future__ import annotations

from flask_appbuilder import AppBuilder
from flask_appbuilder.models.sqla import Model
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

db = SQLA(model_class=Model)
csrf = CSRFProtect()
migrate = Migrate()
appbuilder = AppBuilder()
