from django.urls import path

from chatkit import routes
from widget import views

urlpatterns = [
    path(routes.DEMO, views.demo, name="demo"),
]
