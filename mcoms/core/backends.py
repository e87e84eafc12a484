"""Authentication backend: the head-office admin role carries every admin permission.

Other roles get Django permissions the ordinary way (groups), which staff rarely
need: their work happens in the pages, where roles and scopes are checked.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from mcoms.core.roles import Role


class RoleBackend(ModelBackend):
    def _is_head_office(self, user) -> bool:
        return user.is_active and user.is_staff and getattr(user, "role", None) == Role.ADMIN

    def has_perm(self, user_obj, perm, obj=None):
        return self._is_head_office(user_obj) or super().has_perm(user_obj, perm, obj)

    def has_module_perms(self, user_obj, app_label):
        return self._is_head_office(user_obj) or super().has_module_perms(user_obj, app_label)
