"""Field agents' work: tasks, visits, installs, cash hand-over; the field agent app's pages."""
