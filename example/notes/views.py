from django.conf import settings
from django.shortcuts import redirect, render

from .models import Note


def index(request):
    """Show the deployed revision, the greeting from the secret file and the notes."""
    if request.method == "POST":
        text = request.POST.get("text", "").strip()
        if text:
            Note.objects.create(text=text[:200])
        return redirect("index")
    response = render(
        request,
        "notes/index.html",
        {
            "revision": settings.DJSHIP_REVISION,
            "greeting": settings.GREETING,
            "notes": Note.objects.all()[:20],
            "count": Note.objects.count(),
        },
    )
    response["X-Djship-Revision"] = settings.DJSHIP_REVISION
    return response
