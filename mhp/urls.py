from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotation.urls import api_urlpatterns as annotation_api_urls
from mhp import views
from mhp.media import media_serve

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("account/tokens/", views.api_tokens, name="api-tokens"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Images only to those who may label, in every mode (nginx sends the bytes when it is in front).
    path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", media_serve, name="media"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(annotation_api_urls)),
    path("api/", include("training.urls")),
    path("datasets/", include("datasets.urls")),
    path("training/", include("training.urls_pages")),
    path("", include("annotation.urls")),
]
