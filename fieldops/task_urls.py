"""The field agent app's task pages and the supervisor's team page."""

from django.urls import path

from fieldops import task_views, team_views

urlpatterns = [
    path("tasks/", task_views.task_list, name="tasks"),
    path("tasks/<int:pk>/", task_views.task_detail, name="task"),
    path("tasks/<int:pk>/start/", task_views.task_start, name="task-start"),
    path("tasks/<int:pk>/visit/", task_views.task_visit, name="task-visit"),
    path("tasks/<int:pk>/close/", task_views.task_close, name="task-close"),
    path("tasks/<int:pk>/field-job/", task_views.task_field_job, name="task-field-job"),
    path("tasks/<int:pk>/assign/", task_views.task_assign, name="task-assign"),
    path("tasks/<int:pk>/cancel/", task_views.task_cancel, name="task-cancel"),
    path("team/", team_views.team, name="team"),
    path("team/message/", team_views.team_message, name="team-message"),
]
