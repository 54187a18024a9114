-- The TICKIT sample schema of the Amazon Redshift Database Developer Guide
-- (https://docs.aws.amazon.com/redshift/latest/dg/c_sampledb.html, the CREATE TABLE statements
-- of https://docs.aws.amazon.com/redshift/latest/gsg/rs-gsg-create-sample-db.html), with a
-- small hand-written data set: CATEGORY holds the Guide's 11 rows; the other tables a few
-- deterministic rows each (the Guide's outputs over the full data set are NOT compared).
create table users(
    userid integer not null distkey sortkey,
    username char(8),
    firstname varchar(30),
    lastname varchar(30),
    city varchar(30),
    state char(2),
    email varchar(100),
    phone char(14),
    likesports boolean,
    liketheatre boolean,
    likeconcerts boolean,
    likejazz boolean,
    likeclassical boolean,
    likeopera boolean,
    likerock boolean,
    likevegas boolean,
    likebroadway boolean,
    likemusicals boolean);
create table venue(
    venueid smallint not null distkey sortkey,
    venuename varchar(100),
    venuecity varchar(30),
    venuestate char(2),
    venueseats integer);
create table category(
    catid smallint not null distkey sortkey,
    catgroup varchar(10),
    catname varchar(10),
    catdesc varchar(50));
create table date(
    dateid smallint not null distkey sortkey,
    caldate date not null,
    day character(3) not null,
    week smallint not null,
    month character(5) not null,
    qtr character(5) not null,
    year smallint not null,
    holiday boolean default('N'));
create table event(
    eventid integer not null distkey,
    venueid smallint not null,
    catid smallint not null,
    dateid smallint not null sortkey,
    eventname varchar(200),
    starttime timestamp);
create table listing(
    listid integer not null distkey,
    sellerid integer not null,
    eventid integer not null,
    dateid smallint not null sortkey,
    numtickets smallint not null,
    priceperticket decimal(8,2),
    totalprice decimal(8,2),
    listtime timestamp);
create table sales(
    salesid integer not null,
    listid integer not null distkey,
    sellerid integer not null,
    buyerid integer not null,
    eventid integer not null,
    dateid smallint not null sortkey,
    qtysold smallint not null,
    pricepaid decimal(8,2),
    commission decimal(8,2),
    saletime timestamp);

insert into category values
(1,'Sports','MLB','Major League Baseball'),
(2,'Sports','NHL','National Hockey League'),
(3,'Sports','NFL','National Football League'),
(4,'Sports','NBA','National Basketball Association'),
(5,'Sports','MLS','Major League Soccer'),
(6,'Shows','Musicals','Musical theatre'),
(7,'Shows','Plays','All non-musical theatre'),
(8,'Shows','Opera','All opera and light opera'),
(9,'Concerts','Pop','All rock and pop music concerts'),
(10,'Concerts','Jazz','All jazz singers and bands'),
(11,'Concerts','Classical','All symphony, concerto, and choir concerts');

insert into users values
(1,'JSG99FHE','Rafael','Taylor','Kent','WA','Etiam.laoreet.libero@sodalesMaurisblandit.edu','(664) 602-4412',true,true,null,false,true,null,false,true,false,true),
(2,'PGL08LJI','Vladimir','Humphrey','Murfreesboro','SK','Suspendisse.tristique@nonnisiAenean.edu','(783) 492-1886',null,null,true,true,null,null,false,true,null,null),
(3,'IFT66TXU','Lars','Ratliff','High Point','ME','amet.faucibus.ut@condimentumegetvolutpat.ca','(624) 767-2465',true,false,null,null,null,null,true,true,null,null),
(4,'XDZ38RDD','Barry','Roy','Omaha','AB','tempor@semvitaealiquam.com','(355) 452-8168',false,null,true,null,true,null,null,null,false,null),
(5,'AEB55QTM','Reagan','Hodge','Forest Lake','NS','Nam.consequat.dolor@ac.ca','(476) 519-9131',false,true,false,true,false,false,null,null,null,null),
(6,'NDQ15VBM','Victor','Hernandez','Naperville','GA','lorem@luctus.ca','(818) 765-4255',null,true,true,true,false,false,null,true,null,null);

insert into venue values
(1,'Toyota Park','Bridgeview','IL',0),
(2,'Columbus Crew Stadium','Columbus','OH',0),
(3,'RFK Stadium','Washington','DC',0),
(5,'Gillette Stadium','Foxborough','MA',68756),
(6,'New York Giants Stadium','East Rutherford','NJ',80242),
(7,'BMO Field','Toronto','ON',0),
(8,'The Home Depot Center','Carson','CA',0),
(9,'Dick''s Sporting Goods Park','Commerce City','CO',0),
(10,'Pizza Hut Park','Frisco','TX',0);

insert into date values
(1827,'2008-01-01','TU',1,'JAN','1',2008,true),
(1828,'2008-01-02','WE',1,'JAN','1',2008,false),
(1829,'2008-01-03','TH',1,'JAN','1',2008,false),
(1875,'2008-02-18','MO',8,'FEB','1',2008,true),
(1890,'2008-03-04','TU',10,'MAR','1',2008,false),
(1966,'2008-05-19','MO',21,'MAY','2',2008,false),
(2065,'2008-08-26','TU',35,'AUG','3',2008,false),
(2137,'2008-11-06','TH',45,'NOV','4',2008,false),
(2164,'2008-12-03','WE',49,'DEC','4',2008,false),
(2191,'2008-12-30','TU',53,'DEC','4',2008,false);

insert into event values
(1,5,9,1827,'Gone With The Wind','2008-01-01 19:30:00'),
(2,6,7,1828,'Mamma Mia!','2008-01-02 20:00:00'),
(3,7,6,1829,'The Lion King','2008-01-03 14:30:00'),
(4,8,9,1875,'Linkin Park','2008-02-18 19:00:00'),
(5,9,10,1890,'Diana Krall','2008-03-04 20:00:00'),
(6,10,11,1966,'Berlioz','2008-05-19 20:00:00'),
(7,5,8,2065,'Carmen','2008-08-26 19:30:00'),
(8,6,6,2137,'Wicked','2008-11-06 20:00:00');

insert into listing values
(1,1,1,1827,4,100.00,400.00,'2007-12-20 10:00:00'),
(2,2,2,1828,2,50.50,101.00,'2007-12-21 11:30:00'),
(3,3,3,1829,10,75.25,752.50,'2007-12-22 09:15:00'),
(4,4,4,1875,6,120.00,720.00,'2008-01-15 18:00:00'),
(5,5,5,1890,8,30.00,240.00,'2008-02-01 12:00:00'),
(6,6,6,1966,3,200.00,600.00,'2008-04-30 08:45:00'),
(7,1,7,2065,5,90.00,450.00,'2008-07-10 16:20:00'),
(8,2,8,2137,2,150.00,300.00,'2008-10-01 13:00:00');

insert into sales values
(1,1,1,2,1,1827,2,200.00,30.00,'2007-12-28 10:00:00'),
(2,1,1,3,1,1827,2,200.00,30.00,'2007-12-30 11:00:00'),
(3,2,2,4,2,1828,1,50.50,7.58,'2007-12-31 12:30:00'),
(4,3,3,5,3,1829,4,301.00,45.15,'2008-01-02 09:00:00'),
(5,4,4,6,4,1875,6,720.00,108.00,'2008-02-10 20:00:00'),
(6,5,5,1,5,1890,3,90.00,13.50,'2008-02-20 21:45:00'),
(7,6,6,2,6,1966,1,200.00,30.00,'2008-05-01 08:00:00'),
(8,7,1,3,7,2065,5,450.00,67.50,'2008-08-01 15:00:00'),
(9,8,2,4,8,2137,2,300.00,45.00,'2008-10-20 19:10:00');
