"""The service layer: the one place where records change (DESIGN.md section 2).

Views, REST endpoints, CLI commands, RQ jobs and sheet sync all call these functions with an
explicit :class:`~portal.services.base.Actor`; each write validates, checks permissions on the
action, bumps the record's version and appends an audit event in the same transaction.
"""
