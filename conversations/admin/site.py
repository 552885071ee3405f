"""The admin site as ChatKit's: its name on every page, the sign-in included."""

from django.contrib import admin

admin.site.site_header = "ChatKit"
admin.site.site_title = "ChatKit admin"
admin.site.index_title = "Assistants, conversations and staff"
# The conversation list needs the screen's width: a laptop's 1280 px fit its columns beside
# the filters, not beside the models' sidebar as well (the breadcrumbs lead everywhere).
admin.site.enable_nav_sidebar = False
