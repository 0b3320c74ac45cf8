from django.contrib import admin
from django.urls import path

from visits import views

urlpatterns = [path("", views.index), path("boom/", views.boom), path("admin/", admin.site.urls)]
