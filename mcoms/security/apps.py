from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "mcoms.security"
    label = "security"
    verbose_name = "Security"

    def ready(self) -> None:
        from mcoms.security import checks  # noqa: F401  (registers the deployment checks)
