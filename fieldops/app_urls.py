"""The field agent app's forms and customer pages."""

urlpatterns: list = []
