from django.apps import AppConfig


class SteeringConfig(AppConfig):
    name = "metering.steering"
    label = "steering"
    verbose_name = "Steering"
