-- The role the API and the projection runner connect as. `rapport migrate
-- --grant rapport_app`, run as the owner, gives it what it needs and no more.
CREATE ROLE rapport_app LOGIN PASSWORD 'rapport_app';
