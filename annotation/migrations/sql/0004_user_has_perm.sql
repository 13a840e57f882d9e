CREATE OR REPLACE FUNCTION mhp_user_has_perm(_user integer, _app_label varchar, _codename varchar)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM auth_user_user_permissions x
        JOIN auth_permission p ON p.id = x.permission_id
        JOIN django_content_type ct ON ct.id = p.content_type_id
        WHERE x.user_id = _user AND p.codename = _codename AND ct.app_label = _app_label
    ) OR EXISTS (
        SELECT 1 FROM auth_user_groups g
        JOIN auth_group_permissions x ON x.group_id = g.group_id
        JOIN auth_permission p ON p.id = x.permission_id
        JOIN django_content_type ct ON ct.id = p.content_type_id
        WHERE g.user_id = _user AND p.codename = _codename AND ct.app_label = _app_label
    );
END;
$$
