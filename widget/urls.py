from django.urls import path

from widget import views

urlpatterns = [
    path("", views.demo, name="demo"),
]
