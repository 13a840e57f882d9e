"""Seed the seven top-level categories (derived from Parti's schema) and their subcategories."""

from django.db import migrations
from django.utils.text import slugify

CATEGORIES = {
    "Characters": ["People and portraits", "Fictional characters", "Groups and crowds", "Professions and activities"],
    "Scenes": ["Landscapes and nature", "Cityscapes and architecture", "Indoor scenes", "Fantasy and sci-fi worlds"],
    "Objects": ["Vehicles", "Tools and artifacts", "Clothing and accessories", "Furniture and household"],
    "Animals": ["Mammals", "Birds", "Marine life", "Insects and reptiles", "Fantasy creatures"],
    "Plants": ["Flowers", "Trees and forests", "Gardens and houseplants"],
    "Food": ["Dishes and meals", "Fruits and vegetables", "Desserts and baking", "Drinks"],
    "Arts": ["Paintings and illustration", "Abstract and patterns", "Sculpture", "Typography and design"],
}


def seed(apps, schema_editor):
    Category = apps.get_model("annotation", "Category")
    for position, (name, children) in enumerate(CATEGORIES.items()):
        parent, _ = Category.objects.get_or_create(
            slug=slugify(name),
            defaults={"name": name, "position": position, "target_share": round(1 / len(CATEGORIES), 4)},
        )
        for child_position, child in enumerate(children):
            Category.objects.get_or_create(
                slug=f"{parent.slug}-{slugify(child)}",
                defaults={"name": child, "parent": parent, "position": child_position},
            )


def unseed(apps, schema_editor):
    Category = apps.get_model("annotation", "Category")
    Category.objects.filter(parent__isnull=False).delete()
    Category.objects.filter(parent__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("annotation", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
